"""CAN traffic: file formats, dataset folders, synthetic traffic and graphs."""
