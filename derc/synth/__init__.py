"""Label-conditioned synthetic 12-lead ECGs (cardiac dipole projected onto the leads)."""
