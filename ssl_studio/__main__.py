import sys

from .cli import main

# Guarded: the UMAP child process (spawn) imports the parent's __main__ module again.
if __name__ == "__main__":
    sys.exit(main())
