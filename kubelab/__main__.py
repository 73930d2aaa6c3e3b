"""Allow `python -m kubelab`."""

from kubelab.cli import main

raise SystemExit(main())
