from heimdal_tui.samples.cli import main

raise SystemExit(main())
