"""Training and evaluating weights files; the server never imports this package (the archive
does not ship it)."""
