from larpo.train import main

main()
