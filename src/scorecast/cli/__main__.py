"""python -m scorecast.cli"""

from scorecast.cli.app import main

main()
