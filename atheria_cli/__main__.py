from atheria_cli.cli import main

# Guarded: the job processes of `train --jobs N` are spawned, and spawn re-imports __main__.
if __name__ == "__main__":
    main()
