# expect: panic 4
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, testdata
    sh x6, 3(x5)
    EXPECT_PANIC_TAIL
TEST_END
