# expect: panic 3
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, testdata
    lh x6, 1(x5)
    EXPECT_PANIC_TAIL
TEST_END
