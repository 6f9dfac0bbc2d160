"""`python -m rllib_maddpg.cli ...`: the `rllib` command."""

import sys

from rllib_maddpg.cli import main

sys.exit(main())
