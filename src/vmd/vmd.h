#ifndef VMD_VMD_H
#define VMD_VMD_H

/* The daemon's parent process: vmd [-dnv] [-D macro=value] [-f file] */
int vmd_main(int argc, char *argv[]);

#endif
