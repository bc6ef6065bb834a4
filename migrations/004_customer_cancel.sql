-- A customer may cancel their own order while it is still only received:
-- until the kitchen starts it, nothing has been cooked. legal_transition
-- gains that one move; orders.Moves in Go gains the same, and
-- TestDatabaseAllowsExactlyTheMoves holds the two equal.
CREATE OR REPLACE FUNCTION legal_transition(from_status text, to_status text, actor text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_status, to_status, actor) IN (
        ('received',         'cooking',          'worker'),
        ('received',         'cooking',          'staff'),
        ('cooking',          'out_for_delivery', 'worker'),
        ('cooking',          'out_for_delivery', 'staff'),
        ('out_for_delivery', 'delivered',        'worker'),
        ('out_for_delivery', 'delivered',        'staff'),
        ('received',         'cancelled',        'staff'),
        ('cooking',          'cancelled',        'staff'),
        ('received',         'cancelled',        'customer'))
$$;
