from recgoat_cli.cli.app import main

main()
