"""Allow ``python -m krise_tui``."""

from krise_tui.cli import main

raise SystemExit(main())
