# expect: panic 5
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    lw x6, 0(zero)
    EXPECT_PANIC_TAIL
TEST_END
