"""vmlab.api"""
