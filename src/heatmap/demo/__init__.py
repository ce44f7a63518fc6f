"""`heat demo`: the whole pipeline on one machine, its heat in the terminal and as PNG."""
