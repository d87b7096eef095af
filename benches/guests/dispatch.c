/* A switch-dispatch bytecode interpreter running a counting loop program. */
#include <stdio.h>
#include <stdlib.h>
enum { PUSH, ADD, SUB, DUP, JNZ, SWAP, POP, HALT, MUL };
int main(int argc, char **argv) {
    unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 5000000;
    /* stack: acc counter. loop: acc = acc * 3 + 7; counter -= 1; until counter is 0. */
    static const unsigned long prog[] = {PUSH, 1, PUSH, 0, SWAP, PUSH, 3, MUL, PUSH, 7, ADD,
                                         SWAP, PUSH, 1, SUB, DUP, JNZ, 4, HALT};
    unsigned long stack[64];
    int sp = 0;
    unsigned long pc = 4;
    stack[sp++] = 0;
    stack[sp++] = n;
    for (;;) {
        switch (prog[pc]) {
        case PUSH: stack[sp++] = prog[pc + 1]; pc += 2; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; pc++; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; pc++; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; pc++; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; pc++; break;
        case SWAP: { unsigned long t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; pc++; break; }
        case POP: sp--; pc++; break;
        case JNZ: sp--; pc = stack[sp] ? prog[pc + 1] : pc + 2; break;
        case HALT: goto done;
        default: return 1;
        }
    }
done:
    printf("%lx %d\n", stack[0], sp);
    return 0;
}
