import sys

from graph.report.run_page import main

if __name__ == "__main__":
    sys.exit(main())
