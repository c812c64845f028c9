from openflr.cli import main

main()
