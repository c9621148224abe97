from wal2http_tui.cli import main

raise SystemExit(main())
