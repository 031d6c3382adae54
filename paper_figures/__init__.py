"""Figure scripts: each reads run records and draws one figure (PDF + PNG)."""
