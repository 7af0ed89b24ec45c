"""Rendering a trace for people: the HTML report and the files of its page."""
