"""A sweep's price: cost arms timed, scaled to trial-hours, wall clock, ASHA's saving, disk."""
