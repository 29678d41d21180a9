"""Entry point: page configuration and navigation (ui/entry.py); each page lives in pages/."""

from ui import entry

entry.main()
