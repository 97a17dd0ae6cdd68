# expect: panic 3
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, testdata
    lw x6, 2(x5)
    EXPECT_PANIC_TAIL
TEST_END
