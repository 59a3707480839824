from imgfront.cli import main

main()
