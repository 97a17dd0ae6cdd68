# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, testdata
    .word 0x0002b303  # LOAD funct3 = 3 (ld)
    EXPECT_PANIC_TAIL
TEST_END
