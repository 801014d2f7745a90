"""``python -m innpar_freia``: the innpar command line."""

from innpar_freia.cli import main

main()
