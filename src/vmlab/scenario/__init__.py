"""vmlab.scenario"""
