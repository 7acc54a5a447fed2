# The crash-safe journal of updates in flight.
JOURNAL_SRCS := supervisor/journal.c

TESTS += test_journal
test_journal_SRCS := tests/unit/test_journal.c $(JOURNAL_SRCS) $(COMMON_SRCS)
