"""``python -m featurebench`` runs the command line."""

from featurebench.cli import main

main()
