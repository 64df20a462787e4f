"""One module per detector; see heimdal_tui.detect.registry for the list."""
