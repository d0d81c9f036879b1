// The Engine Hub stand-in (being written).
