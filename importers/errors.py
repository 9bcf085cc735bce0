class ImportFailure(Exception):
    """An import that can not go on: bad file, bad spec, wrong CRS. The message is one line for a person."""
