from encoderzoo.cli import main

main()
