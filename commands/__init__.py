"""The secli command line: thin Typer commands that parse options, call ``secli`` and render."""
