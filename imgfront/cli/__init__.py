"""The command line: `imgfront build`, `imgfront farm`, `imgfront doctor` and the rest."""
