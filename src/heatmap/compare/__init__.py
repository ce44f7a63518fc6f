"""Strategy comparison on recorded history: books under leverage and heat rules."""
