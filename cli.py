"""Run the innpar command line from a checkout: ``python cli.py --help``."""

from innpar_freia.cli import main

if __name__ == "__main__":
    main()
