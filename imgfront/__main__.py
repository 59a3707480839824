from imgfront.cli.main import main

main()
