from atheria_cli.cli import main

main()
