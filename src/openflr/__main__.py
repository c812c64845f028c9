from openflr.cli import main

if __name__ == "__main__":  # importing the module (multiprocessing, tools) starts nothing
    main()
