# expect: panic 3
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, testdata
    lhu x6, 3(x5)
    EXPECT_PANIC_TAIL
TEST_END
