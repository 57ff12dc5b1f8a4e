"""CAN traffic: file formats, dataset folders, synthetic traffic and graphs.

From raw files to what a stage trains on:

- ``layout``: a dataset folder's train_*/ and test_<N>_<scenario>/ files, and the launcher's cheap check of them;
- ``formats``: CAN file formats, one module each in ``formats.REGISTRY`` (sniff, read, write);
- ``frames``: the columns every reader returns;
- ``vocabulary``, ``features``, ``windows``, ``graphset``: frames to graphs, one per window;
- ``batching``: graph sets as PyTorch Geometric data (the only module that imports torch);
- ``identity``, ``dataset``: the prepared dataset (graphs, vocabulary, train/val split), cached by key;
- ``locate``, ``synth``, ``synth_record``: finding a dataset, or generating a synthetic one;
- ``duplicates``: byte-identical files, read once, and leaks between training and test;
- ``info``: ``kdgat data info``;
- ``distributions``, ``importer``, ``splitting``, ``provenance``: ``kdgat data import``, the public downloads
  made into dataset folders (which download, the plan, the split it makes, its ``import.json``).
"""
