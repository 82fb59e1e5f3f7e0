"""Privacy: erasing a member's personal data (``erase``), each table's policy in one place
(``registry``), and what the pipeline does with an erased id afterwards (``guard``)."""
