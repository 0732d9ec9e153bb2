/* Intentionally empty. The theme draws its icons with the Font Awesome webfont that its CSS already
   loads; the 1.5 MB script that would redraw them as SVG is replaced by this file (book/_ext/site_source.py). */
