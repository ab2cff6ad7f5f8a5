"""Records: their generator, the data lake that keeps them, and the normaliser that checks them."""
