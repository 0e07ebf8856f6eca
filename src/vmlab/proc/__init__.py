"""/proc for the simulated machine: Linux's text formats (format.py and the modules it
gathers) and, built on them, the files a Machine serves."""
