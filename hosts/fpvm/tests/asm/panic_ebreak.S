# expect: panic 7
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    ebreak
    EXPECT_PANIC_TAIL
TEST_END
