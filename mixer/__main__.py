from mixer.cli import main

raise SystemExit(main())
