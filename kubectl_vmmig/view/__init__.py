"""What a person watches: the live view of ``migrate --wait`` and ``status -w`` (all engines).

- ``text``: glyphs, colour, shortening (pure).
- ``layout``: Migration dicts + width/height + clock -> lines (pure).
- ``summary``: the end-of-run summary, the next step and the pre-cutover plan table (pure).
- ``terminal``: the writer that redraws a frame in place (the only I/O here).
"""
